import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a dot-segment param', '/api/users/../admin/profile', null)
