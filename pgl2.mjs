import { PGlite } from "@electric-sql/pglite";
let t=performance.now();
const pg = await PGlite.create();
console.log('create', performance.now()-t); t=performance.now();
await pg.query('select 1'); console.log('q', performance.now()-t); t=performance.now();
await pg.close(); console.log('close', performance.now()-t);
