import { useState } from 'react';

/**
 * Cursor paging as the API does it (`nextCursor` in, `after`/`cursor` out): the cursors of the
 * pages seen so far, so "previous" goes back without the API knowing one.
 */
export function useCursorPages() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  return {
    /** The cursor to send for the page on screen (undefined: the first page). */
    current: cursors.at(-1),
    hasPrevious: cursors.length > 1,
    previous: () => setCursors(cursors.slice(0, -1)),
    next: (cursor: string) => setCursors([...cursors, cursor]),
    /** Back to the first page, e.g. when a filter changes. */
    reset: () => setCursors([undefined]),
  };
}

export function Pager({
  pages,
  nextCursor,
  previousLabel,
  nextLabel,
}: {
  pages: ReturnType<typeof useCursorPages>;
  nextCursor: string | null | undefined;
  previousLabel: string;
  nextLabel: string;
}) {
  return (
    <div className="pager">
      {pages.hasPrevious ? (
        <button type="button" className="secondary" onClick={pages.previous}>
          {previousLabel}
        </button>
      ) : null}
      {nextCursor ? (
        <button type="button" className="secondary" onClick={() => pages.next(nextCursor)}>
          {nextLabel}
        </button>
      ) : null}
    </div>
  );
}
