import { templateInjection } from '../helpers/template-escape.js'

templateInjection('an extra segment', '/api/users/1/2/profile', null)
