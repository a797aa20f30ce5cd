import { escapeForm } from '../helpers/escape.js'

escapeForm('a raw backslash', '/api/posts/..\\admin')
