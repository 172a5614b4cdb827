#!/usr/bin/env node
import("../packages/worker/dist/cli.js");
