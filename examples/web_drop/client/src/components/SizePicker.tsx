import { useId } from 'react';
import type { SizeOption } from '../inventory';

/**
 * The drop's sizes as one radio group. Sold-out sizes stay listed (struck
 * through) so buyers see what the drop has; they come back live when units
 * return. They are disabled unless the drop has waiting lines, where
 * choosing one is how a buyer joins its line.
 */
export function SizePicker({
  dropName,
  options,
  value,
  disabled,
  onChange,
}: {
  dropName: string;
  options: SizeOption[];
  value: string | null;
  disabled: boolean;
  onChange: (id: string) => void;
}) {
  const name = useId();
  return (
    <fieldset className="sizes" disabled={disabled}>
      <legend className="sizes-legend">Size</legend>
      <div className="sizes-list" role="radiogroup" aria-label={`Size of ${dropName}`}>
        {options.map((o) => (
          <label key={o.id} className={`size${o.soldOut ? ' size-out' : ''}${o.id === value ? ' size-on' : ''}`}>
            <input
              type="radio"
              name={name}
              value={o.id}
              checked={o.id === value}
              disabled={o.disabled}
              onChange={() => onChange(o.id)}
              aria-label={o.soldOut ? `${o.name}, sold out` : o.name}
            />
            <span aria-hidden="true">{o.name}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}
