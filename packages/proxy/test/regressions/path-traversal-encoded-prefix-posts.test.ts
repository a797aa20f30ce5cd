import { escapeForm } from '../helpers/escape.js'

escapeForm('percent-encoded characters inside the prefix', '/api/%70osts/../admin')
