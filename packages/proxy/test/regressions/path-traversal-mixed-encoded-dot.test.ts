import { escapeForm } from '../helpers/escape.js'

escapeForm('half-encoded dots', '/api/posts/.%2E/admin')
