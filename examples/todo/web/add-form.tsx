import { useState } from 'react';

interface AddFormProps {
  /** The form's id; its input's is `inputId`. */
  id: string;
  inputId: string;
  placeholder: string;
  maxLength: number;
  disabled?: boolean;
  /** Gets the trimmed text; a blank one is dropped. */
  onAdd: (text: string) => void;
}

/**
 * A one-field form that adds something: Enter hands the trimmed text to `onAdd` and empties the
 * field (the new list, the new todo).
 *
 * @example
 *   <AddForm id="new-todo-form" inputId="new-todo" placeholder="What needs doing?" maxLength={200} onAdd={add} />
 */
export function AddForm({ id, inputId, placeholder, maxLength, disabled, onAdd }: AddFormProps) {
  const [text, setText] = useState('');
  return (
    <form
      id={id}
      onSubmit={(event) => {
        event.preventDefault();
        const trimmed = text.trim();
        if (!trimmed) return;
        setText('');
        onAdd(trimmed);
      }}
    >
      <input
        id={inputId}
        placeholder={placeholder}
        autoComplete="off"
        maxLength={maxLength}
        disabled={disabled}
        value={text}
        onChange={(event) => setText(event.target.value)}
      />
    </form>
  );
}
