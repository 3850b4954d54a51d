-- bank_a's saga log. A saga's debit writes its row in the same transaction ('debited'); the
-- credit's success marks it 'done', a compensation 'compensated' (in the compensation's own
-- transaction, so it is never paid twice). A saga cut short (its client stopped at the
-- deadline, or bank_b still down then) stays 'debited': the recovery pass finishes it.
CREATE TABLE sagas (
    xfer    text PRIMARY KEY,
    from_id int  NOT NULL,
    amount  int  NOT NULL,
    state   text NOT NULL
);
