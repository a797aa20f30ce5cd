import { templateInjection } from '../helpers/template-escape.js'

templateInjection('a param with an encoded question mark', '/api/users/1%3Fadmin=true/profile', '/internal/users/1%3Fadmin%3Dtrue/profile')
