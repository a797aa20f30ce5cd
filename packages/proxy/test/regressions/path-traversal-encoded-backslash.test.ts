import { escapeForm } from '../helpers/escape.js'

escapeForm('an encoded backslash', '/api/posts/%5c..%5cadmin')
