"""Tables of the billing domain (SQLAlchemy 2 declarative models).

Money columns are ``BigInteger`` minor units with a currency code beside them; times are
stored in UTC (:class:`UTCDateTime`); local calendar dates (periods, due dates) are plain
``Date`` columns meant in the customer's own time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from billing.bitcoin import AddressType, BitcoinNetwork
from billing.payment_systems import Mode, NotificationKind
from billing.periods import BillingPeriod

#: Integer primary keys that autoincrement on both SQLite and PostgreSQL.
Id = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(cls: type[StrEnum]) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=24,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# --- enums ------------------------------------------------------------------------------


class CustomerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class ChargeKind(StrEnum):
    SUBSCRIPTION = "SUBSCRIPTION"
    USAGE = "USAGE"
    ONE_OFF = "ONE_OFF"


class ChargeStatus(StrEnum):
    POSTED = "POSTED"
    VOIDED = "VOIDED"


class PaymentChannel(StrEnum):
    CASH = "CASH"
    WIRE = "WIRE"
    CHEQUE = "CHEQUE"
    CARD = "CARD"
    #: Paid to one of the customer's receiving addresses (:mod:`billing.bitcoin_payments`).
    BITCOIN = "BITCOIN"
    #: Cash paid at a terminal network's machine, pushed in through ``/terminal/v1``
    #: (:mod:`billing.terminals`).
    TERMINAL = "TERMINAL"
    #: Cash paid at a store against the customer's PayNearMe slip (:mod:`billing.cash_slips`).
    PAYNEARME = "PAYNEARME"
    #: Paid on a redirect system's own page (PayPal, Skrill, Payarena, Remita); the reference
    #: is the processor account's name (:mod:`billing.redirect_payments`).
    REDIRECT = "REDIRECT"
    #: Collected by a direct-debit gateway through a one-off schedule kassa submitted
    #: (:mod:`billing.gateway_billing`).
    DIRECT_DEBIT = "DIRECT_DEBIT"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    UNKNOWN = "UNKNOWN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"
    #: Completed, then taken back by a chargeback or return: the credit was reversed in a
    #: new transaction (:mod:`billing.payment_notifications`).
    REVERSED = "REVERSED"


class InvoiceKind(StrEnum):
    REGULAR = "REGULAR"
    OUT_OF_TURN = "OUT_OF_TURN"


class InvoiceStatus(StrEnum):
    #: Waiting for an administrator to approve or void it: not sent, not charged, not due.
    PENDING_REVIEW = "PENDING_REVIEW"
    UNPAID = "UNPAID"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"
    OVERDUE = "OVERDUE"
    VOID = "VOID"


class CardCharging(StrEnum):
    """When collection charges the customer's default card for an invoice."""

    NEVER = "NEVER"
    ON_ISSUE = "ON_ISSUE"
    ON_DUE_DATE = "ON_DUE_DATE"


class AttemptStatus(StrEnum):
    """A charge attempt's life: SCHEDULED → UNKNOWN (in flight) → SUCCEEDED | FAILED, or
    CANCELED before it was made.  UNKNOWN stays until the processor is asked (by key)."""

    SCHEDULED = "SCHEDULED"
    UNKNOWN = "UNKNOWN"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class StatusSubject(StrEnum):
    """What a recorded status change is about."""

    INVOICE = "INVOICE"
    CUSTOMER = "CUSTOMER"


class LedgerAccountKind(StrEnum):
    """Books of the ledger.  CUSTOMER/DISTRIBUTOR are per party; the rest per owner+currency."""

    CUSTOMER = "CUSTOMER"
    DISTRIBUTOR = "DISTRIBUTOR"
    REVENUE = "REVENUE"
    CASH = "CASH"
    PROCESSOR = "PROCESSOR"
    OPENING_BALANCE = "OPENING_BALANCE"
    #: What the provider (or a reseller) gives its distributors: the commission they keep.
    COMMISSION = "COMMISSION"
    #: The bitcoin an owner's wallet received for its customers, in satoshi (currency BTC).
    BITCOIN_WALLET = "BITCOIN_WALLET"
    #: Where bitcoin becomes the customer's currency: per owner, one book in BTC and one per
    #: currency credited, so each side of a bitcoin payment balances in its own currency.
    CONVERSION = "CONVERSION"


class TransactionKind(StrEnum):
    OPENING_BALANCE = "OPENING_BALANCE"
    CHARGE = "CHARGE"
    PAYMENT = "PAYMENT"
    REFUND = "REFUND"
    VOID = "VOID"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"
    #: A distributor paying the provider what it owes (``billing.distributors``).
    DISTRIBUTOR_PAYMENT = "DISTRIBUTOR_PAYMENT"


class StatisticsEmail(StrEnum):
    """How a distributor's statistics are e-mailed to its accounting address."""

    SUMMARY = "SUMMARY"
    FULL_WITH_CSV = "FULL_WITH_CSV"
    NONE = "NONE"


class Role(StrEnum):
    ADMIN = "ADMIN"
    RESELLER = "RESELLER"
    DISTRIBUTOR = "DISTRIBUTOR"
    CUSTOMER = "CUSTOMER"


class ApiKeyScope(StrEnum):
    READ = "READ"
    READ_WRITE = "READ_WRITE"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


class RunKind(StrEnum):
    """The batch runs that isolate each customer's work (:mod:`billing.run_failures`)."""

    BILL_RUN = "BILL_RUN"
    #: The collection run and the card-charge janitor: charging cards and booking answers.
    COLLECTION = "COLLECTION"
    #: Closing distributors' billing periods (:mod:`billing.distributor_billing`).
    DISTRIBUTOR_BILLING = "DISTRIBUTOR_BILLING"
    #: Recording and crediting what the chain watcher reports (:mod:`billing.bitcoin_payments`).
    BITCOIN = "BITCOIN"


# --- parties ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class Reseller(Base):
    """An optional owner of customers, with its own invoice numbering and settings."""

    __tablename__ = "resellers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    #: The reseller's customers may pay through the provider's processor accounts when none
    #: of the reseller's own fits (:func:`billing.processor_accounts.route`).
    processor_fallback: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )


class CustomerClass(Base):
    """Terms shared by a group of customers: payment terms and grace period, and whether the
    bill run issues an invoice for a period with nothing on it (see
    :func:`billing.invoices.is_empty`)."""

    __tablename__ = "customer_classes"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=14)
    grace_period_days: Mapped[int] = mapped_column(Integer, default=7)
    issue_empty_invoices: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class CollectionSettings(Base):
    """How one class's invoices of one kind (REGULAR or OUT_OF_TURN) are due and collected.

    No row means the defaults (:mod:`billing.collection`); a null payment term or grace
    period means the class's own.  Attempt days are comma-separated day counts ("0,3,7").
    """

    __tablename__ = "collection_settings"
    __table_args__ = (
        UniqueConstraint("class_id", "invoice_kind", name="uq_collection_settings_kind"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("customer_classes.id"))
    invoice_kind: Mapped[InvoiceKind] = mapped_column(_enum(InvoiceKind))
    payment_terms_days: Mapped[int | None] = mapped_column(Integer)
    grace_period_days: Mapped[int | None] = mapped_column(Integer)
    card_charging: Mapped[CardCharging] = mapped_column(_enum(CardCharging))
    attempt_days_before_due: Mapped[str] = mapped_column(String(200), default="")
    attempt_days_after_due: Mapped[str] = mapped_column(String(200), default="")
    review: Mapped[bool] = mapped_column(Boolean, default=False)


class Distributor(Base):
    """A sales agent who signs up customers and collects cash on commission
    (:mod:`billing.distributors`).  Its ledger book's balance is what it owes the provider.

    Commission rates are basis points (``1500`` = 15.00 %), exact integers.  The credit-limit
    warning threshold is either a share of the credit limit (basis points) or an amount,
    never both; ``over_warning`` remembers that the warning for the current crossing went.
    """

    __tablename__ = "distributors"
    __table_args__ = (
        CheckConstraint("sales_commission_bps BETWEEN 0 AND 10000", name="sales_commission_range"),
        CheckConstraint(
            "payment_commission_bps BETWEEN 0 AND 10000", name="payment_commission_range"
        ),
        CheckConstraint(
            "(warning_percent_bps IS NULL) <> (warning_amount IS NULL)",
            name="one_warning_threshold",
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    #: The class the distributor's own invoices follow (payment terms, collection).
    class_id: Mapped[int | None] = mapped_column(ForeignKey("customer_classes.id"))
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(500))
    #: Where credit-limit warnings, invoices and statistics go.
    accounting_email: Mapped[str | None] = mapped_column(String(254))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    billing_period: Mapped[BillingPeriod] = mapped_column(_enum(BillingPeriod))
    billing_anchor: Mapped[date] = mapped_column(Date)
    #: First local day of the distributor's open billing period.
    period_start: Mapped[date] = mapped_column(Date)
    #: UTC instant at which the open period ends (when it is to be invoiced).
    next_bill_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_commission_bps: Mapped[int] = mapped_column(Integer, default=0)
    payment_commission_bps: Mapped[int] = mapped_column(Integer, default=0)
    warning_percent_bps: Mapped[int | None] = mapped_column(Integer)
    warning_amount: Mapped[int | None] = mapped_column(BigInteger)
    over_warning: Mapped[bool] = mapped_column(Boolean, default=False)
    statistics_email: Mapped[StatisticsEmail] = mapped_column(
        _enum(StatisticsEmail), default=StatisticsEmail.SUMMARY
    )
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)

    ledger_account: Mapped[LedgerAccount] = relationship(lazy="joined", innerjoin=True)

    @property
    def balance(self) -> int:
        """What the distributor owes the provider (negative: paid ahead)."""
        return self.ledger_account.balance


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"), index=True)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("customer_classes.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(500))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    billing_period: Mapped[BillingPeriod] = mapped_column(_enum(BillingPeriod))
    #: Local date the billing periods are anchored on (weekday / anniversary day).
    billing_anchor: Mapped[date] = mapped_column(Date)
    #: First local day of the period that is still open (not yet invoiced).
    period_start: Mapped[date] = mapped_column(Date)
    #: UTC instant at which the open period ends: the bill run's work list.
    next_bill_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[CustomerStatus] = mapped_column(
        _enum(CustomerStatus), default=CustomerStatus.ACTIVE, index=True
    )
    auto_payment: Mapped[bool] = mapped_column(Boolean, default=False)
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)

    ledger_account: Mapped[LedgerAccount] = relationship(lazy="joined", innerjoin=True)
    customer_class: Mapped[CustomerClass | None] = relationship(lazy="joined")

    @property
    def balance(self) -> int:
        """What the customer owes (positive) or has in credit (negative)."""
        return self.ledger_account.balance

    @property
    def available_funds(self) -> int:
        return self.credit_limit - self.balance


class Account(Base):
    """A service account (e.g. a phone number) that charges are posted to."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    product: Mapped[str] = mapped_column(String(200))
    status: Mapped[AccountStatus] = mapped_column(
        _enum(AccountStatus), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


# --- ledger -----------------------------------------------------------------------------


class LedgerAccount(Base):
    """One book of the ledger with its cached balance (always the sum of its entries)."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("kind", "owner_key", "currency", name="uq_ledger_book"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[LedgerAccountKind] = mapped_column(_enum(LedgerAccountKind))
    #: For system books: ``"reseller:<id>"`` or ``"provider"``; for parties a unique token.
    owner_key: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerTransaction(Base):
    """An immutable movement of money (an xDR); its entries sum to zero."""

    __tablename__ = "ledger_transactions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(_enum(TransactionKind))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The transaction this one reverses (refund, void, reversal).
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    #: The distributor whose book it moves (a sale, a collection, a payment to the provider).
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"), index=True)
    #: The rate (customer's currency → distributor's, an exact decimal string) a sale or
    #: collection across currencies converted at; its reversal carries it too.
    exchange_rate: Mapped[str | None] = mapped_column(String(40))

    entries: Mapped[list[LedgerEntry]] = relationship(lazy="selectin")


class ExchangeRate(Base):
    """How much one unit of ``from_currency`` is worth in ``to_currency``, as the provider's
    administrators set it (:mod:`billing.exchange_rates`): an exact decimal string, never a
    float, so a conversion rounds once, half-up, the same on both databases."""

    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("from_currency", "to_currency", name="uq_exchange_rates"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="nonzero"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    #: The service account the entry concerns, where there is one.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


# --- charges, invoices, payments ----------------------------------------------------------


class Charge(Base):
    """A pre-rated charge posted to an account; once invoiced (``invoice_id``), one of its
    invoice's lines — the bill run points charges at their invoice instead of copying them.

    ``invoice_id`` has no foreign key and ``account_id`` no index of its own: both made the
    bill run's one write per charge dearer (migration 0027); ``kassa check`` proves each
    invoiced charge's invoice is its customer's (:func:`billing.invoices.misfiled_charges`)."""

    __tablename__ = "charges"
    __table_args__ = (Index("ix_charges_uninvoiced", "customer_id", "invoice_id", "service_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: The account's number when the charge was posted: what its invoice line prints, even
    #: if the account is renumbered later.
    account_number: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ChargeKind] = mapped_column(_enum(ChargeKind))
    description: Mapped[str] = mapped_column(String(500))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    service_at: Mapped[datetime] = mapped_column(UTCDateTime)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ChargeStatus] = mapped_column(_enum(ChargeStatus), default=ChargeStatus.POSTED)
    invoice_id: Mapped[int | None] = mapped_column(Id)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))


class InvoiceSequence(Base):
    """The next invoice number per owner (provider or reseller)."""

    __tablename__ = "invoice_sequences"
    owner_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_number: Mapped[int] = mapped_column(BigInteger, default=1)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # A regular period is invoiced exactly once, however often the bill run runs.
        Index(
            "uq_invoices_regular_period",
            "customer_id",
            "period_start",
            unique=True,
            sqlite_where=text("kind = 'REGULAR'"),
            postgresql_where=text("kind = 'REGULAR'"),
        ),
        UniqueConstraint("owner_key", "number", name="uq_invoices_number"),
        Index("ix_invoices_customer_issue", "customer_id", "issue_date"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    owner_key: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[InvoiceKind] = mapped_column(_enum(InvoiceKind))
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    previous_balance: Mapped[int] = mapped_column(BigInteger)
    payments_in_period: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why an administrator voided the invoice (printed on its PDF); None unless VOID.
    void_reason: Mapped[str | None] = mapped_column(String(400))
    #: Why collection last passed the invoice by (``billing.collection.NotCharged``).
    not_charged_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def outstanding(self) -> int:
        return invoice_outstanding(self)

    @property
    def balance_due(self) -> int:
        return invoice_balance_due(self)


def invoice_outstanding(invoice: Any) -> int:
    """What an invoice (the object, or a row of its columns) still needs: nothing once void."""
    if invoice.status == InvoiceStatus.VOID:
        return 0
    return int(invoice.total - invoice.amount_paid)


def invoice_balance_due(invoice: Any) -> int:
    """Everything owed as of an invoice (the object, or a row of its columns): previous
    balance − payments + this period."""
    return int(invoice.previous_balance - invoice.payments_in_period + invoice.total)


class DistributorInvoiceStatus(StrEnum):
    """OPEN until the distributor's payments to the provider since the period's end reach
    its balance due; then PAID (at once when nothing was due)."""

    OPEN = "OPEN"
    PAID = "PAID"


class DistributorInvoice(Base):
    """A distributor's invoice for one closed billing period (:mod:`billing.distributor_billing`):
    what it owed before, what the period's movements did to that by kind, and what it owes.

    It moves no money — every sale, collection and payment was booked when it happened — so
    its figures are read from the ledger at closing time and always reconcile:
    ``balance_due = previous_balance + Σ movements``.  Gross and commission per kind are
    stored; net is gross − commission.  Numbered from its owner's invoice sequence, like
    customer invoices, so the provider's numbering has no gaps and no repeats.
    """

    __tablename__ = "distributor_invoices"
    __table_args__ = (
        # A period is invoiced exactly once, however often (or concurrently) the job runs.
        UniqueConstraint("distributor_id", "period_start", name="uq_distributor_invoices_period"),
        UniqueConstraint("owner_key", "number", name="uq_distributor_invoices_number"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"))
    owner_key: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    #: The UTC instant the period ended: payments to the provider from then on pay it.
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    previous_balance: Mapped[int] = mapped_column(BigInteger)
    sales_gross: Mapped[int] = mapped_column(BigInteger)
    sales_commission: Mapped[int] = mapped_column(BigInteger)
    collections_gross: Mapped[int] = mapped_column(BigInteger)
    collections_commission: Mapped[int] = mapped_column(BigInteger)
    reversals_gross: Mapped[int] = mapped_column(BigInteger)
    reversals_commission: Mapped[int] = mapped_column(BigInteger)
    #: What the distributor paid the provider in the period (positive: it lowered the balance).
    payments: Mapped[int] = mapped_column(BigInteger)
    #: Any other movement of its book (adjustments), as it moved the balance.
    other: Mapped[int] = mapped_column(BigInteger)
    balance_due: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[DistributorInvoiceStatus] = mapped_column(_enum(DistributorInvoiceStatus))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InvoicePdf(Base):
    """An invoice's rendered PDF, kept so a download is a read, not a render.

    The figures that can change after issue are the status, the amount paid and the
    owner's letterhead; the row notes which of them it was drawn with (the letterhead by its
    revision, 0 for none set), and is stale (re-rendered) once any differs.
    """

    __tablename__ = "invoice_pdfs"
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    status_rendered: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus))
    amount_paid_rendered: Mapped[int] = mapped_column(BigInteger)
    letterhead_revision_rendered: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)
    #: Hex SHA-256 of ``content``: the download's ETag.
    sha256: Mapped[str] = mapped_column(String(64))
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Letterhead(Base):
    """What an owner of customers prints at the head of their invoices (and its portal shows).

    One per owner, keyed like ``Invoice.owner_key`` (``provider`` or ``reseller:<id>``), so
    an invoice finds its letterhead without going through its customer.  ``revision`` goes
    up by one with every change: kept PDFs note the revision they show and are re-rendered
    when it moves on (:mod:`billing.invoice_pdfs`).
    """

    __tablename__ = "letterheads"
    owner_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    tax_id: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(String(200))
    payment_instructions: Mapped[str | None] = mapped_column(String(1000))
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentMethod(Base):
    """A stored card: only the processor's token, brand, last 4 digits and expiry."""

    __tablename__ = "payment_methods"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    processor: Mapped[str] = mapped_column(String(32))
    #: The processor account that stored it; None for cards stored before accounts existed
    #: (they are charged through ``processor`` with its process-wide settings).
    processor_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("processor_accounts.id"), index=True
    )
    token: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_customer_received", "customer_id", "received_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    method: Mapped[PaymentChannel] = mapped_column(_enum(PaymentChannel), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus))
    reference: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    #: For card payments: the invoice it was meant for, if any.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    processor: Mapped[str | None] = mapped_column(String(32))
    #: The processor account the charge went through (None: ``processor``'s process-wide
    #: settings, as for payments made before accounts existed).
    processor_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("processor_accounts.id"), index=True
    )
    #: An ACTION_REQUIRED charge: where the customer confirms it (3-D Secure) while PENDING.
    action_url: Mapped[str | None] = mapped_column(String(2000))
    #: Why a notification about this payment was refused (amount or currency mismatch): for
    #: an administrator to look at; such a notification never credits anything.
    flagged_reason: Mapped[str | None] = mapped_column(String(500))
    #: A flagged payment an administrator has looked into: when, and what they found.
    flag_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flag_review_note: Mapped[str | None] = mapped_column(String(500))
    #: For card payments: the idempotency key the charge is sent under, committed with the
    #: intent before the processor is called (see ``billing.card_charges``).
    processor_key: Mapped[str | None] = mapped_column(String(200), index=True, unique=True)
    #: While a card charge's outcome is open (PENDING, UNKNOWN): when the janitor asks next.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    processor_reference: Mapped[str | None] = mapped_column(String(200))
    #: A redirect payment still PENDING: when the abandoned redirect stops being payable and
    #: the expiry job asks the system about it (:mod:`billing.redirect_payments`).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    decline_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(String(500))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    #: Cash a distributor collected and recorded, and the commission it kept of it.
    recorded_by_distributor_id: Mapped[int | None] = mapped_column(
        ForeignKey("distributors.id"), index=True
    )
    distributor_commission: Mapped[int | None] = mapped_column(BigInteger)


class ProcessorAccount(Base):
    """A payment system an owner of customers (the provider or a reseller, keyed like
    ``Letterhead.owner_key``) has configured: which processor, its credentials (a JSON object
    sealed with :mod:`billing.secrets_at_rest`, never shown back), test or live mode, the
    currencies it takes with the minimum payment in each (``minimums``: currency → minor
    units) and the payment methods it offers (``method_kinds``: a list of
    :class:`~billing.payment_systems.MethodKind` values)."""

    __tablename__ = "processor_accounts"
    __table_args__ = (UniqueConstraint("owner_key", "name", name="uq_processor_accounts_name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    processor: Mapped[str] = mapped_column(String(32))
    credentials_sealed: Mapped[str] = mapped_column(Text)
    mode: Mapped[Mode] = mapped_column(_enum(Mode))
    base_url: Mapped[str | None] = mapped_column(String(500))
    minimums: Mapped[dict[str, int]] = mapped_column(JSON)
    method_kinds: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessorNotification(Base):
    """A verified callback applied (:mod:`billing.payment_notifications`): the unique
    ``(processor_account_id, event_id)`` is what makes a resent callback harmless.
    ``outcome`` says what it did (APPLIED, FLAGGED, IGNORED, NO_PAYMENT)."""

    __tablename__ = "processor_notifications"
    __table_args__ = (
        UniqueConstraint(
            "processor_account_id", "event_id", name="uq_processor_notifications_event"
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TerminalRequest(Base):
    """A signed request a cash terminal network made (:mod:`billing.terminals`): the unique
    ``(processor_account_id, signature)`` refuses a replay of the same signed bytes.  Rows
    are pruned once their ``signed_at`` is past the freshness window, when the timestamp
    check alone refuses the request."""

    __tablename__ = "terminal_requests"
    __table_args__ = (
        UniqueConstraint(
            "processor_account_id", "signature", name="uq_terminal_requests_signature"
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))
    signature: Mapped[str] = mapped_column(String(64))
    #: The request's own timestamp (what the signature covers), for pruning.
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TerminalPayment(Base):
    """What a terminal network said about a payment it pushed in: its own transaction id
    and time, for its status queries and the daily reconciliation.  The payment's
    ``processor_key`` (``terminal:<account>:<transaction id>``) is what makes *pay*
    idempotent."""

    __tablename__ = "terminal_payments"
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    network_txn_id: Mapped[str] = mapped_column(String(64))
    network_time: Mapped[datetime] = mapped_column(UTCDateTime)


class CashSlip(Base):
    """A customer's standing PayNearMe slip (:mod:`billing.cash_slips`): one per customer,
    opened through a processor account; ``payment_identifier`` is what the store scans and
    the barcode carries, ``external_id`` PayNearMe's order id."""

    __tablename__ = "cash_slips"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))
    payment_identifier: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    #: The store chains, as the processor listed them, one per line.
    where_to_pay: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GatewaySettings(Base):
    """What kassa keeps about a direct-debit gateway's processor account
    (:mod:`billing.gateway_billing`): which gateway status counts as paid (``paid_on``:
    CLEARED or SETTLED), the establishment fee and commission the portal shows before a
    customer commits, and the status poll's cursor (the end date of the last window polled)
    and last poll."""

    __tablename__ = "gateway_settings"
    processor_account_id: Mapped[int] = mapped_column(
        ForeignKey("processor_accounts.id"), primary_key=True
    )
    paid_on: Mapped[str] = mapped_column(String(16))
    establishment_fee: Mapped[int] = mapped_column(BigInteger)
    fee_currency: Mapped[str] = mapped_column(String(3))
    commission_basis_points: Mapped[int] = mapped_column(Integer)
    poll_cursor: Mapped[date | None] = mapped_column(Date)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_poll_seen: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_applied: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GatewayBilledClass(Base):
    """A customer class whose customers a direct-debit gateway bills, through which of its
    processor accounts (:mod:`billing.gateway_billing`)."""

    __tablename__ = "gateway_billed_classes"
    class_id: Mapped[int] = mapped_column(ForeignKey("customer_classes.id"), primary_key=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))


class GatewayEnrollment(Base):
    """A customer on-boarded at a direct-debit gateway: the gateway's customer id and account
    reference (all kassa keeps of the payment method), AWAITING_METHOD → ACTIVE, and STOPPED
    by a payment stop until the method is replaced."""

    __tablename__ = "gateway_enrollments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))
    gateway_customer_id: Mapped[str] = mapped_column(String(50))
    #: The id the gateway's API addresses the account by; ``account_reference`` is the one
    #: it shows people.
    gateway_account_id: Mapped[str] = mapped_column(String(50))
    account_reference: Mapped[str] = mapped_column(String(50))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    status: Mapped[str] = mapped_column(String(24))
    stop_code: Mapped[str | None] = mapped_column(String(64))
    stop_message: Mapped[str | None] = mapped_column(String(500))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GatewaySchedule(Base):
    """A one-off schedule kassa submitted for a payment, under ``external_identifier`` (the
    charge attempt's key, so a resubmission finds the first), with its latest status."""

    __tablename__ = "gateway_schedules"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    processor_account_id: Mapped[int] = mapped_column(ForeignKey("processor_accounts.id"))
    external_identifier: Mapped[str] = mapped_column(String(50), unique=True)
    schedule_id: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(64))
    status_date: Mapped[date | None] = mapped_column(Date)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GatewayScheduleStatus(Base):
    """A status a poll saw for a schedule, once per (schedule, status, status date) however
    many polls saw it (``times_seen``); ``outcome`` is what applying it did."""

    __tablename__ = "gateway_schedule_statuses"
    __table_args__ = (
        UniqueConstraint(
            "schedule_id", "status", "status_date", name="uq_gateway_schedule_statuses_seen"
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("gateway_schedules.id"))
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(64))
    status_date: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(24))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    times_seen: Mapped[int] = mapped_column(Integer)


class PaymentAllocation(Base):
    """How much of a payment went to an invoice; refunds add negative rows, never edit."""

    __tablename__ = "payment_allocations"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CollectionAttempt(Base):
    """One planned charge of an invoice's outstanding amount to the customer's default card.

    At most one per invoice and local day.  The processor idempotency key is
    ``attempt-<id>``, so however often a run is restarted the card is charged once.
    """

    __tablename__ = "collection_attempts"
    __table_args__ = (
        UniqueConstraint("invoice_id", "scheduled_for", name="uq_collection_attempts_day"),
        Index("ix_collection_attempts_due", "status", "scheduled_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    #: The customer's local day the attempt is for, and the UTC instant it falls due.
    scheduled_for: Mapped[date] = mapped_column(Date)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus))
    #: What was (or is being) charged: the invoice's outstanding amount when it was made.
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    processor: Mapped[str | None] = mapped_column(String(32))
    processor_reference: Mapped[str | None] = mapped_column(String(200))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    #: The processor's answer, or why the attempt was canceled (``reason``).
    message: Mapped[str | None] = mapped_column(String(500))
    reason: Mapped[str | None] = mapped_column(String(32))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StatusChange(Base):
    """A recorded transition of an invoice's or a customer's status: when, from, to, why."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_subject", "subject", "subject_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subject: Mapped[StatusSubject] = mapped_column(_enum(StatusSubject))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    #: None when the subject was created with ``to_status``.
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A code (``billing.status_changes.Cause``) and, where there is one, what did it
    #: ("payment:12", "attempt:7", "user:3").
    cause: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


# --- access -----------------------------------------------------------------------------


class User(Base):
    """Someone who signs in: an administrator, reseller, distributor or customer."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    #: The portal's time zone and language for this user (None: the browser's / UTC).
    time_zone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class UserSession(Base):
    """A signed-in session (``billing.user_sessions``): while the row lives, so does the
    session; sign-out, "sign out everywhere" and expiry delete it.  The session token names
    the row and carries a secret of which only a SHA-256 is kept here."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SignInAttempt(Base):
    """Failed sign-ins from one client address (``billing.sign_in_throttle``): for one
    e-mail address, or for every address together (``email = '*'``).  A row that has
    reached its limit is locked until ``locked_until`` — from that client address only."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        UniqueConstraint("client_address", "email", name="uq_sign_in_attempts_client_email"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_address: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    failures: Mapped[int] = mapped_column(Integer)
    #: When the failures counted so far are forgotten (at the end of a lock, if locked).
    window_ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A partner's bearer key; only a SHA-256 of the secret is stored.

    A key acts for the provider, for one reseller or for one distributor (then its caller is
    that distributor, as if signed in), never for a reseller and a distributor at once.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("reseller_id IS NULL OR distributor_id IS NULL", name="one_owner"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[ApiKeyScope] = mapped_column(_enum(ApiKeyScope))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The first result of a money-moving mutation, replayed for the same key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    result_kind: Mapped[str] = mapped_column(String(32))
    result_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- time and jobs -----------------------------------------------------------------------


class ClockState(Base):
    """The test clock (:mod:`billing.clock`): frozen at ``frozen_at`` when that is set,
    otherwise running at ``offset_microseconds`` from the wall clock (none: the wall clock)."""

    __tablename__ = "clock_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offset_microseconds: Mapped[int | None] = mapped_column(BigInteger)


class Job(Base):
    """Scheduled work with a due time; claimed with SKIP LOCKED on PostgreSQL."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_pending_due", "status", "due_at"),
        Index(
            "uq_jobs_pending_key",
            "unique_key",
            unique=True,
            sqlite_where=text("status = 'PENDING'"),
            postgresql_where=text("status = 'PENDING'"),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.PENDING)
    unique_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RunFailure(Base):
    """One customer's work that a batch run could not do (:mod:`billing.run_failures`): for
    the bill run a customer, for collection one invoice (or top-up) of a customer, for
    distributor billing a distributor (then ``customer_id`` is null).

    The run skipped it and went on with the others; the next run at or after
    ``next_retry_at`` tries again, and the first one that gets through sets ``resolved_at``.
    ``code`` is the domain error's code, or ``INTERNAL_ERROR`` for a bug, whose details (never
    a stack trace or card data) are only in the server log.
    """

    __tablename__ = "run_failures"
    __table_args__ = (
        Index("ix_run_failures_open", "kind", "resolved_at", "next_retry_at"),
        CheckConstraint("(customer_id IS NULL) <> (distributor_id IS NULL)", name="one_party"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_retry_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- e-mail -------------------------------------------------------------------------------


class OutboxMessage(Base):
    """An e-mail kept until the SMTP server has accepted it (``sent_at``), so none is lost
    while the server is down.  ``dedupe_key`` names the event it is about, so composing the
    same event twice writes one row."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    to: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the next delivery may be tried: backoff after a failure, a lease while sending.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- bitcoin ----------------------------------------------------------------------------


class BitcoinRateSource(StrEnum):
    """Where an owner's bitcoin exchange rates come from."""

    #: Rates the administrator typed (the demo, or a provider who fixes its own price).
    FIXED = "FIXED"
    #: A price endpoint per currency, polled by a job.
    HTTP = "HTTP"


class BitcoinSettings(Base):
    """An owner's Bitcoin payment settings (:mod:`billing.bitcoin_wallets`), one row per
    owner keyed like ``Letterhead.owner_key``: the wallet addresses come from, the minimum
    payment credited, the confirmations a payment needs and where the exchange rates come
    from (``rate_config``: the fixed rates or the price endpoints, as canonical JSON, sealed
    with :mod:`billing.secrets_at_rest` since a price endpoint's URL may carry an API key)."""

    __tablename__ = "bitcoin_settings"
    owner_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("bitcoin_wallets.id"))
    #: In ``minimum_currency``'s minor units: satoshi for BTC.
    minimum_amount: Mapped[int] = mapped_column(BigInteger)
    minimum_currency: Mapped[str] = mapped_column(String(3))
    confirmations: Mapped[int] = mapped_column(Integer)
    rate_source: Mapped[BitcoinRateSource] = mapped_column(_enum(BitcoinRateSource))
    rate_config: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BitcoinWallet(Base):
    """An account key an owner has given, with the script its addresses use: the chain of
    addresses handed out from it.  Changing the key (or type) in the settings makes a new
    wallet; the old one's addresses stay their customers' and stay watched.  ``next_index``
    is the next unused index of the external chain, taken by an atomic increment.

    The key itself is stored sealed (``account_key_sealed``, :mod:`billing.secrets_at_rest`):
    it reveals every address, so every payment, of the owner's customers.  It is found and
    kept unique by ``account_key_digest``, its keyed HMAC."""

    __tablename__ = "bitcoin_wallets"
    __table_args__ = (
        UniqueConstraint(
            "account_key_digest", "address_type", "network", name="uq_bitcoin_wallets_key_type"
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(64), index=True)
    account_key_sealed: Mapped[str] = mapped_column(Text)
    account_key_digest: Mapped[str] = mapped_column(String(64))
    network: Mapped[BitcoinNetwork] = mapped_column(_enum(BitcoinNetwork))
    address_type: Mapped[AddressType] = mapped_column(_enum(AddressType))
    next_index: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BitcoinAddress(Base):
    """A receiving address handed to a customer: index ``index`` of its wallet's external
    chain (``0/index``).  Never reused and never deleted; ``first_funded_at`` is set when a
    payment to it is first seen."""

    __tablename__ = "bitcoin_addresses"
    __table_args__ = (
        UniqueConstraint("wallet_id", "index", name="uq_bitcoin_addresses_wallet_index"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("bitcoin_wallets.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    index: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Rate(Base):
    """What one bitcoin was worth in ``currency`` for an owner, at ``fetched_at``: in the
    currency's minor units (6500000 is 65,000.00 USD).  Never updated: a new rate is a new
    row, so a payment can name the rate it was converted at."""

    __tablename__ = "rates"
    __table_args__ = (Index("ix_rates_owner_currency_time", "owner_key", "currency", "fetched_at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    minor_per_btc: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[BitcoinRateSource] = mapped_column(_enum(BitcoinRateSource))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BitcoinPaymentState(StrEnum):
    """Where a bitcoin payment is (:mod:`billing.bitcoin_payments`)."""

    #: Seen on the chain (or in the mempool), waiting for its confirmations.
    PENDING = "PENDING"
    #: Confirmed but smaller than the owner's minimum: not credited unless an administrator
    #: credits it by hand.
    BELOW_MINIMUM = "BELOW_MINIMUM"
    CREDITED = "CREDITED"
    #: Gone from the chain before it was credited (replaced by fee, double-spent).
    DROPPED = "DROPPED"
    #: Credited, then removed from the chain by a reorganisation: the credit was reversed.
    REVERSED = "REVERSED"


class BitcoinPayment(Base):
    """One output paying a customer's address (``txid:vout``), from the moment the watcher
    first reports it.  Its :class:`Payment` (channel BITCOIN) carries the amount in the
    customer's currency at ``minor_per_btc``, the rate when it was first seen.  The unique
    ``(txid, vout)`` is what makes a repeated report of one output harmless.
    ``flag`` says why an administrator should look at it (``BELOW_MINIMUM``,
    ``REORGANISED``) until ``flag_cleared_at``."""

    __tablename__ = "bitcoin_payments"
    __table_args__ = (UniqueConstraint("txid", "vout", name="uq_bitcoin_payments_outpoint"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("bitcoin_addresses.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    txid: Mapped[str] = mapped_column(String(64))
    vout: Mapped[int] = mapped_column(Integer)
    satoshis: Mapped[int] = mapped_column(BigInteger)
    confirmations: Mapped[int] = mapped_column(Integer)
    rate_id: Mapped[int] = mapped_column(ForeignKey("rates.id"))
    minor_per_btc: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[BitcoinPaymentState] = mapped_column(_enum(BitcoinPaymentState), index=True)
    flag: Mapped[str | None] = mapped_column(String(32))
    flag_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Dropped or reversed.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )


def table_of(model: type[Base]) -> Table:
    """``model``'s table, typed as one, for the set-based UPDATE and INSERT … SELECT
    statements (SQLAlchemy types ``__table__`` as any FROM clause)."""
    return cast(Table, model.__table__)
