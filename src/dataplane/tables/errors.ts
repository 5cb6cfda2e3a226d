// Refusals of the shared tables, for the control plane that programs them (the dataplane never throws:
// a worker counts and drops). Part of the one error family (common/errors.ts): stable `code`s, a one-line
// message naming the table, its size and what to change.
import { TableError } from '../../common/errors.js';

/** A table has no free entry (after reclaiming what readers released). Nothing was changed. */
export class TableFullError extends TableError {
  constructor(
    /** `adjacency-table-full` or `neighbor-table-full` */
    code: 'adjacency-table-full' | 'neighbor-table-full',
    message: string,
  ) {
    super(code, message);
    this.name = 'TableFullError';
  }
}
