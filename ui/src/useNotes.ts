// The shell's messages: error banners (the last three, one per message) and one status note
// (an info note goes after NOTE_MS; a warning stays until dismissed).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { NoteTone } from "./ctx";

export type Note = { id: number; text: string; tone: NoteTone };
export type ErrorBanner = { id: number; message: string };

/** How long a status note stays (a warning stays until dismissed). */
export const NOTE_MS = 12_000;
/** How many error banners show at once (the newest). */
export const MAX_ERRORS = 3;

export type Notes = {
  errors: ErrorBanner[];
  addError: (message: string) => void;
  dismissError: (id: number) => void;
  note: Note | null;
  showNote: (text: string, tone?: NoteTone) => void;
  dismissNote: () => void;
};

export function useNotes(): Notes {
  const [errors, setErrors] = useState<ErrorBanner[]>([]);
  const [note, setNote] = useState<Note | null>(null);
  const ids = useRef({ note: 0, error: 0 });

  const addError = useCallback((message: string) => {
    const id = ++ids.current.error;
    setErrors((l) => [...l.filter((e) => e.message !== message), { id, message }].slice(-MAX_ERRORS));
  }, []);
  const dismissError = useCallback((id: number) => setErrors((l) => l.filter((x) => x.id !== id)), []);
  const showNote = useCallback((text: string, tone: NoteTone = "info") => setNote({ id: ++ids.current.note, text, tone }), []);
  const dismissNote = useCallback(() => setNote(null), []);

  useEffect(() => {
    if (!note || note.tone === "warn") return;
    const t = setTimeout(() => setNote((n) => (n?.id === note.id ? null : n)), NOTE_MS);
    return () => clearTimeout(t);
  }, [note]);

  return { errors, addError, dismissError, note, showNote, dismissNote };
}
