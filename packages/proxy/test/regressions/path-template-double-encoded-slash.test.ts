import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a double-encoded slash param', '/api/users/a%252fb/profile', '/internal/users/a%252fb/profile')
