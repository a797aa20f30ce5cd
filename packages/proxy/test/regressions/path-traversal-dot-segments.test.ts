import { escapeForm } from '../helpers/escape.js'

escapeForm('dot segments', '/api/posts/../admin')
