import { useCallback, useState } from "react";

/** What a control needs to be tied to its label, hint and error (screen readers read all three). */
export interface ControlProps {
  id: string;
  "aria-invalid": boolean | undefined;
  "aria-describedby": string | undefined;
}

/** A labelled form field; its error, when any, is shown under it and announced with it. */
export function Field({
  id,
  label,
  hint,
  error,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  children: (props: ControlProps) => React.ReactNode;
}) {
  const described = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " field-invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": error ? true : undefined, "aria-describedby": described })}
      {hint && (
        <p id={`${id}-hint`} className="field-hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="field-error" data-testid={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** The outcome of the last submit: errors as an alert, a success as a polite status. */
export function FormStatus({ error, done }: { error: string | null; done: string | null }) {
  return (
    <>
      {error && (
        <div className="state state-error form-status" role="alert" data-testid="form-error">
          {error}
        </div>
      )}
      <div role="status" aria-live="polite">
        {done && (
          <p className="form-done" data-testid="form-done">
            {done}
          </p>
        )}
      </div>
    </>
  );
}

const AUTHOR_KEY = "meteoflow.author";

/** Who is acting, remembered in this browser so it is typed once. */
export function useAuthor(): [string, (name: string) => void] {
  const [author, setState] = useState<string>(() => {
    try {
      return window.localStorage.getItem(AUTHOR_KEY) ?? "";
    } catch {
      return "";
    }
  });
  const setAuthor = useCallback((name: string) => {
    setState(name);
    try {
      window.localStorage.setItem(AUTHOR_KEY, name);
    } catch {
      /* private mode: remembered for this page only */
    }
  }, []);
  return [author, setAuthor];
}
