#!/usr/bin/env node
import("../packages/broker/dist/cli.js");
