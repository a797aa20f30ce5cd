#!/usr/bin/env node
// A committed entry point, so package managers can link the bin before the build exists.
import '../dist/cli.js'
