import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a param with an encoded hash', '/api/users/1%23/profile', '/internal/users/1%23/profile')
