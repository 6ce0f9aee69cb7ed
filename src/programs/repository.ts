import type { Executor } from '../db/database.js';
import type { ProgramRow } from '../db/schema.js';

export function findProgram(executor: Executor, programId: string) {
  return executor.selectFrom('program').selectAll().where('id', '=', programId).executeTakeFirst();
}

export function findProgramBySlug(executor: Executor, slug: string) {
  return executor.selectFrom('program').selectAll().where('slug', '=', slug).executeTakeFirst();
}

export function listPrograms(executor: Executor) {
  return executor.selectFrom('program').selectAll().orderBy('created_at').execute();
}

export function listProgramImages(executor: Executor, programId: string) {
  return executor
    .selectFrom('program_image')
    .select(['name', 'png', 'updated_at'])
    .where('program_id', '=', programId)
    .execute();
}

export type { ProgramRow };
