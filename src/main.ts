// Entry point of `npm start`: the server, with the process's command-line flags.
import { serve } from './serve.ts';

await serve(process.argv.slice(2));
