import { escapeForm } from '../helpers/escape.js'

escapeForm('an encoded NUL', '/api/posts/%00/../admin')
