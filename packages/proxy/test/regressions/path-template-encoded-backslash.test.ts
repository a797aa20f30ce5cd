import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a param with an encoded backslash', '/api/users/..%5cadmin/profile', null)
