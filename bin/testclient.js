#!/usr/bin/env node
import "../packages/client/dist/cli.js";
