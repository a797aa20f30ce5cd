import { escapeForm } from '../helpers/escape.js'

escapeForm('percent-encoded prefix characters', '/api/%61dmin')
