import { escapeForm } from '../helpers/escape.js'

escapeForm('a single dot segment', '/api/posts/./../admin/x')
