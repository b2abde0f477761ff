import type { ReactNode } from 'react';

/**
 * A table in its own scrolling, focusable region (so a wide table scrolls inside its box, by
 * keyboard too), named for screen readers, with one row of column headings. Rows are the children.
 */
export function TableRegion({
  label,
  headings,
  caption,
  className,
  children,
}: {
  label: string;
  headings: ReactNode[];
  caption?: string;
  className?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={label}>
      <table className={className}>
        {caption ? <caption className="visually-hidden">{caption}</caption> : null}
        <thead>
          <tr>
            {headings.map((heading, i) => (
              <th scope="col" key={i}>
                {heading}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
