import t from 'tap'
import { MemoryStore } from '../src/store/index.js'
import { behaviour } from './helpers/suite.js'

behaviour(t, () => new MemoryStore())
