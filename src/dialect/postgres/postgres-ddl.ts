import { DdlCompiler } from '../ddl-compiler.js';

export class PostgresDdlCompiler extends DdlCompiler {
  protected functionDefault(kind: 'random' | 'now'): string {
    return kind === 'random' ? 'gen_random_uuid()' : 'now()';
  }
}
