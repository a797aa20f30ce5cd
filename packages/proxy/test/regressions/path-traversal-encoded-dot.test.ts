import { escapeForm } from '../helpers/escape.js'

escapeForm('percent-encoded dots', '/api/posts/%2e%2e/admin')
