/**
 * Identity checks that survive two copies of the package in one program.
 *
 * `instanceof` fails when an app ends up with two copies of syncline (a bundler quirk, a linked
 * package), so every public class carries a string tag under a well-known symbol and `is()`
 * compares tags along the prototype chain instead.
 *
 * @example
 *   if (is(value, Column)) console.log(value.name);
 */
export const entityKind: unique symbol = Symbol.for('syncline:entityKind');

export interface Entity {
  readonly [entityKind]: string;
}

type Constructor<T> = abstract new (...args: any[]) => T;

export function is<T>(value: unknown, type: Constructor<T> & { readonly [entityKind]: string }): value is T {
  if (value === null || typeof value !== 'object') return false;
  if (value instanceof type) return true;
  const wanted = type[entityKind];
  let proto = Object.getPrototypeOf(value);
  while (proto) {
    const ctor = proto.constructor as { [entityKind]?: string } | undefined;
    if (ctor && Object.hasOwn(ctor, entityKind) && ctor[entityKind] === wanted) return true;
    proto = Object.getPrototypeOf(proto);
  }
  return false;
}
