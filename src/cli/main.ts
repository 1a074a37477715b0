#!/usr/bin/env node
import { answerFromBuild } from './prebuilt-help.js';

// `cs-llm --help` and `--version` from what the build rendered with commander, without loading commander or
// the command table (#21); every other command line runs the program.
if (!answerFromBuild(process.argv)) void import('./run.js').then(({ run }) => run(process.argv));
