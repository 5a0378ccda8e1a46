"""Stored cards.  Card numbers and security codes go in, are tokenized, and never come out:
no type has a field for them, and errors name the problem, never the digits."""

from __future__ import annotations

from datetime import datetime

import strawberry

from billing import models, payment_methods
from billing.errors import UserError
from resolvers import payment_methods as resolve
from resolvers.context import Info
from schema.errors import UserErrorType, user_errors
from schema.permissions import IsAuthenticated
from schema.relay import encode_id


@strawberry.type(description="A stored card: the processor's token stays inside kassa.")
class PaymentMethod:
    id: strawberry.ID
    processor: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime
    removed_at: datetime | None

    @classmethod
    def from_model(cls, row: models.PaymentMethod) -> PaymentMethod:
        return cls(
            id=encode_id("PaymentMethod", row.id),
            processor=row.processor,
            brand=row.brand,
            last4=row.last4,
            exp_month=row.exp_month,
            exp_year=row.exp_year,
            is_default=row.is_default,
            created_at=row.created_at,
            removed_at=row.removed_at,
        )


@strawberry.type(description="A setting the processor's browser script is started with.")
class PublicSetting:
    name: str
    value: str


@strawberry.type(
    description="How the customer's card form works.  With a scriptUrl the processor "
    "tokenizes the card in the browser (Stripe.js, Accept.js): load the script, start it with "
    "publicSettings and send only its token (adoptPaymentMethod); the card number never "
    "reaches kassa.  Without one the card is sent to addPaymentMethod."
)
class CardForm:
    processor: str
    script_url: str | None
    public_settings: list[PublicSetting]

    @classmethod
    def of(cls, form: payment_methods.CardForm) -> CardForm:
        client = form.client
        return cls(
            processor=form.processor,
            script_url=client.script_url if client else None,
            public_settings=[
                PublicSetting(name=name, value=value)
                for name, value in sorted((client.public_settings if client else {}).items())
            ],
        )


@strawberry.input
class AdoptPaymentMethodInput:
    customer_id: strawberry.ID
    client_token: str = strawberry.field(
        description="What the processor's script made of the card (a Stripe PaymentMethod "
        "id; Accept.js's opaqueData as JSON)."
    )
    make_default: bool = strawberry.field(
        default=False, description="The first card becomes the default anyway."
    )


@strawberry.input
class AddPaymentMethodInput:
    customer_id: strawberry.ID
    card_number: str
    exp_month: int
    exp_year: int = strawberry.field(description="Four digits.")
    cvc: str
    holder: str | None = None
    make_default: bool = strawberry.field(
        default=False, description="The first card becomes the default anyway."
    )


@strawberry.input
class RemovePaymentMethodInput:
    id: strawberry.ID


@strawberry.input
class SetDefaultPaymentMethodInput:
    id: strawberry.ID


@strawberry.type
class PaymentMethodPayload:
    payment_method: PaymentMethod | None = None
    errors: list[UserErrorType] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, result: models.PaymentMethod | UserError) -> PaymentMethodPayload:
        if isinstance(result, UserError):
            return cls(errors=user_errors(result))
        return cls(payment_method=PaymentMethod.from_model(result))


@strawberry.type
class PaymentMethodMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Store a card (tokenized by the card processor).",
    )
    async def add_payment_method(
        self, info: Info, input: AddPaymentMethodInput
    ) -> PaymentMethodPayload:
        return PaymentMethodPayload.of(await resolve.add_payment_method(info.context, input))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Store a card the processor's script tokenized in the browser "
        "(Customer.cardForm).",
    )
    async def adopt_payment_method(
        self, info: Info, input: AdoptPaymentMethodInput
    ) -> PaymentMethodPayload:
        return PaymentMethodPayload.of(await resolve.adopt_payment_method(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def remove_payment_method(
        self, info: Info, input: RemovePaymentMethodInput
    ) -> PaymentMethodPayload:
        return PaymentMethodPayload.of(await resolve.remove_payment_method(info.context, input))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def set_default_payment_method(
        self, info: Info, input: SetDefaultPaymentMethodInput
    ) -> PaymentMethodPayload:
        return PaymentMethodPayload.of(
            await resolve.set_default_payment_method(info.context, input)
        )
