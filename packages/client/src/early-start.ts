/**
 * cli-run.ts imports this first: in the bundle, modules run in the order they are imported, so
 * --local's Python starts before the rest of the bundle (yargs, chalk, the packages) is
 * evaluated, ~7 ms earlier than from cli-run's own code.
 */
import { prestartLocalPython } from './local-python.js';

prestartLocalPython();
