import { escapeForm } from '../helpers/escape.js'

escapeForm('a doubled slash inside the path', '/api/posts//../admin')
