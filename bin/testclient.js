#!/usr/bin/env node
require("../packages/client/dist/cli.cjs");
