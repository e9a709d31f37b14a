/** The SQLite store: schema, migrations, comparison import/export (see src/data/README.md, "Store"). */
export { StoreError } from './errors.ts';
export { exportComparisons, type ImportResult, importComparisons } from './io.ts';
export { MIGRATIONS, type Migration, migrate } from './migrations.ts';
export * from './records.ts';
export * from './store.ts';
