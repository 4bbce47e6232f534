with

payments as (

    select * from {{ ref('stg_shop__payments') }}

),

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

unknown as (

    select
        payments.payment_id,
        payments.order_id,
        payments.attempted_at,
        payments._file,
        payments._line,
        payments._delivery_date

    from payments
    left join orders
        on payments.order_id = orders.order_id
    where orders.order_id is null

)

select * from unknown
