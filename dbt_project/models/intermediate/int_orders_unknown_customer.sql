with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

unknown as (

    select
        orders.order_id,
        orders.customer_key,
        orders.ordered_at,
        orders._file,
        orders._line,
        orders._delivery_date

    from orders
    left join customers
        on orders.customer_key = customers.customer_key
    where customers.customer_key is null

)

select * from unknown
