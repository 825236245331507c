import { useEffect, useRef, useState } from 'react';

/**
 * An input that edits `value` in place: Enter or leaving the field saves (a blank or unchanged
 * value is dropped), Escape cancels. `onDone` runs once either way, with the new text or
 * undefined. It keeps its own text, so a live query re-rendering the row around it (a sync
 * change arriving, the open count moving) leaves the field, its focus and what was typed as
 * they are.
 *
 * @example
 *   <InlineEditor value={todo.title} onDone={(text) => text && rename(todo.id, text)} />
 */
export function InlineEditor({
  value,
  onDone,
}: {
  value: string;
  onDone: (text: string | undefined) => void;
}) {
  const [original] = useState(value);
  const [text, setText] = useState(value);
  const input = useRef<HTMLInputElement>(null);
  const finished = useRef(false);
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const finish = (next: string | undefined) => {
    if (finished.current) return;
    finished.current = true;
    const trimmed = next?.trim();
    onDone(trimmed && trimmed !== original ? trimmed : undefined);
  };
  return (
    <input
      ref={input}
      className="inline-edit"
      value={text}
      onChange={(event) => setText(event.target.value)}
      onKeyDown={(event) => {
        if (event.key === 'Enter') finish(text);
        if (event.key === 'Escape') finish(undefined);
      }}
      onBlur={() => finish(text)}
    />
  );
}

/**
 * A name that can be renamed in place: double-click it to open an `InlineEditor`; `onSave` gets the new text, unless it was left blank, unchanged or
 * cancelled. Each row keeps its own editing state, so edits elsewhere never close it.
 *
 * @example
 *   <EditableText className="todo-title" value={todo.title} onSave={(title) => rename(todo.id, title)} />
 */
export function EditableText({
  value,
  className,
  onSave,
}: {
  value: string;
  className: string;
  onSave: (text: string) => void;
}) {
  const [editing, setEditing] = useState(false);
  if (editing) {
    return (
      <InlineEditor
        value={value}
        onDone={(text) => {
          setEditing(false);
          if (text) onSave(text);
        }}
      />
    );
  }
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: a pointer shortcut, as on the page before React; the demo has no keyboard navigation.
    <span className={className} title="double-click to rename" onDoubleClick={() => setEditing(true)}>
      {value}
    </span>
  );
}
