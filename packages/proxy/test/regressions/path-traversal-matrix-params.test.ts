import { escapeForm } from '../helpers/escape.js'

escapeForm('matrix ;params', '/api/posts/..;/admin')
