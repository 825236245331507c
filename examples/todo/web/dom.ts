/**
 * Makes an element with properties (`className`, `textContent`, `onclick`, `dataset` ...) and
 * children: the todo page's whole view layer.
 *
 * @example
 *   list.append(h('li', { className: 'done', dataset: { todoId: id } }, h('span', { textContent: title })));
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Omit<HTMLElementTagNameMap[K], 'dataset'>> & { dataset?: Record<string, string> } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const { dataset, ...rest } = props;
  const element = Object.assign(document.createElement(tag), rest);
  for (const [key, value] of Object.entries(dataset ?? {})) element.dataset[key] = value;
  element.append(...children);
  return element;
}

/**
 * An input that edits `value` in place: Enter or leaving the field saves (a blank or unchanged
 * value is dropped), Escape cancels. `done` runs once either way, with the new text or undefined.
 *
 * @example
 *   title.replaceWith(inlineEditor(todo.title, (text) => text && rename(todo.id, text)));
 */
export function inlineEditor(value: string, done: (text: string | undefined) => void): HTMLInputElement {
  const input = h('input', { value, className: 'inline-edit' });
  let finished = false;
  const finish = (text: string | undefined) => {
    if (finished) return;
    finished = true;
    const trimmed = text?.trim();
    done(trimmed && trimmed !== value ? trimmed : undefined);
  };
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') finish(input.value);
    if (event.key === 'Escape') finish(undefined);
  });
  input.addEventListener('blur', () => finish(input.value));
  queueMicrotask(() => {
    input.focus();
    input.select();
  });
  return input;
}
