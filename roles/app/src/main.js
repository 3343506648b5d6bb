// The bundle's entry point (see ../build.mjs): start the server with the process environment.
import {main} from './server.js';

main();
