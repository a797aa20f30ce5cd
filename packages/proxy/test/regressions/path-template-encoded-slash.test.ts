import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a param with an encoded slash', '/api/users/..%2f..%2fadmin/profile', null)
