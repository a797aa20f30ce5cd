import { escapeForm } from '../helpers/escape.js'

escapeForm('doubled slashes', '//api/admin')
