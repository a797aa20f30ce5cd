import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a real query string', '/api/users/7/profile?x=1&y=%2F', '/internal/users/7/profile?x=1&y=%2F')
