// The hand-out policy's "ask" mode: a dialog per question naming the program and the connection,
// answered Allow once or Deny (Escape denies; Deny has the focus). Questions wait in turn; one
// that timed out in the core (a Deny) closes by itself.
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage, events } from "./api";
import type { HandOutAsked } from "./bindings/HandOutAsked";
import { Dialog } from "./ui";

export function HandOutQuestions({ onError }: { onError: (message: string) => void }) {
  const [queue, setQueue] = useState<HandOutAsked[]>([]);
  useEffect(() => {
    const asked = events.onHandOutQuestion((q) => setQueue((all) => [...all, q]));
    const closed = events.onHandOutQuestionClosed((id) => setQueue((all) => all.filter((q) => q.id !== id)));
    return () => {
      void asked.then((f) => f());
      void closed.then((f) => f());
    };
  }, []);
  const current = queue[0];
  if (current === undefined) return null;
  const answer = (allow: boolean) => {
    setQueue((all) => all.filter((q) => q.id !== current.id));
    api.answerHandOut(current.id, allow).catch((e) => onError(errorMessage(e)));
  };
  const { question: q } = current;
  return (
    <Dialog label="A program asks for a token" onClose={() => answer(false)} class="confirm" closeOnBackdrop={false} attrs={{ "data-hand-out-question": String(current.id) }}>
      <h2 class="dialog-title">A program asks for a token</h2>
      <div class="dialog-body">
        <p>
          <code data-question-program>{q.program ?? "An unknown program"}</code>
          {q.pid !== null && <span class="muted"> (pid {q.pid})</span>} asks for the access token of{" "}
          <strong data-question-target>
            {q.tenant}/{q.connection}
          </strong>
          .
        </p>
        <p class="muted small">The policy of this connection is “ask”. Allow gives it this one token; without an answer it is denied.</p>
      </div>
      <div class="dialog-actions">
        <button type="button" class="btn" data-autofocus data-answer="deny" onClick={() => answer(false)}>
          Deny
        </button>
        <button type="button" class="btn primary" data-answer="allow" onClick={() => answer(true)}>
          Allow once
        </button>
      </div>
    </Dialog>
  );
}
