{%- set has_payments = cxloop_source_present('payments') -%}

with

ingest_rows as (

    select
        source,
        _file,
        _line,
        rule,
        message,
        raw_text,
        cast('ingest' as {{ dbt.type_string() }}) as stage,
        _delivery_date

    from {{ ref('stg_ingest__quarantine') }}

),

unknown_customer_rows as (

    select
        cast('orders' as {{ dbt.type_string() }}) as source,
        _file,
        _line,
        cast('orders.customer_id.known' as {{ dbt.type_string() }}) as rule,
        cast('customer_key not found in customers' as {{ dbt.type_string() }}) as message,
        {{ dbt.concat(["'order_id='", "order_id", "',customer_key='", "coalesce(customer_key, '')"]) }} as raw_text,
        cast('build' as {{ dbt.type_string() }}) as stage,
        _delivery_date

    from {{ ref('int_orders_unknown_customer') }}

),

{% if has_payments %}
unknown_order_rows as (

    select
        cast('payments' as {{ dbt.type_string() }}) as source,
        _file,
        _line,
        cast('payments.order_id.known' as {{ dbt.type_string() }}) as rule,
        cast('order_id not found in orders' as {{ dbt.type_string() }}) as message,
        {{ dbt.concat(["'payment_id='", "payment_id", "',order_id='", "coalesce(order_id, '')"]) }} as raw_text,
        cast('build' as {{ dbt.type_string() }}) as stage,
        _delivery_date

    from {{ ref('int_payments_unknown_order') }}

),
{% endif %}

unioned as (

    select * from ingest_rows
    union all
    select * from unknown_customer_rows
    {% if has_payments %}
    union all
    select * from unknown_order_rows
    {% endif %}

)

select * from unioned
