import { escapeForm } from '../helpers/escape.js'

escapeForm('an encoded slash', '/api/posts%2f..%2fadmin')
