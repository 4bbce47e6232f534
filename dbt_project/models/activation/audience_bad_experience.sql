{%- set has_payments = cxloop_source_present('payments') -%}
{%- set has_tickets = cxloop_source_present('tickets') -%}
{%- set has_surveys = cxloop_source_present('surveys') -%}
{%- set recent_days = var('cxloop_bad_experience_days') -%}
{%- set low_csat = var('cxloop_low_csat') -%}

with

customers as (

    select * from {{ ref('customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

experiences as (

    {#- Every touchpoint that tells how the customer fared, good or bad: the latest one decides. Each branch
        needs its source; the typed empty select keeps the union valid when none is present. -#}
    select
        cast(null as {{ dbt.type_string() }}) as customer_key,
        cast(null as {{ dbt.type_timestamp() }}) as experience_at,
        cast(null as {{ dbt.type_string() }}) as touchpoint,
        cast(null as boolean) as is_bad,
        cast(null as {{ dbt.type_string() }}) as reason
    where 1 = 0

    {% if has_payments %}
    union all

    select
        orders.customer_key,
        payments.attempted_at as experience_at,
        'payment' as touchpoint,
        payments.payment_status = 'failed' as is_bad,
        case when payments.payment_status = 'failed'
            then 'last payment attempt failed (' || coalesce(payments.failure_code, 'unknown') || ')'
        end as reason
    from {{ ref('stg_shop__payments') }} as payments
    inner join orders
        on payments.order_id = orders.order_id
    {% endif %}

    {% if has_tickets %}
    union all

    select
        customer_key,
        coalesce(resolved_at, created_at) as experience_at,
        'support' as touchpoint,
        csat <= {{ low_csat }} as is_bad,
        case when csat <= {{ low_csat }}
            then 'rated support ' || cast(csat as {{ dbt.type_string() }}) || '/5'
        end as reason
    from {{ ref('stg_support__tickets') }}
    where csat is not null
        and customer_key is not null
    {% endif %}

    {% if has_surveys %}
    union all

    select
        customer_key,
        submitted_at as experience_at,
        'survey' as touchpoint,
        nps_category = 'detractor' as is_bad,
        case when nps_category = 'detractor'
            then 'NPS detractor (' || cast(score as {{ dbt.type_string() }}) || '/10)'
        end as reason
    from {{ ref('stg_surveys__responses') }}
    where score is not null
        and customer_key is not null
    {% endif %}

),

data_end as (

    select max(experience_at) as as_of_at from experiences

),

latest as (

    select
        experiences.*,
        row_number() over (
            partition by customer_key
            order by experience_at desc, is_bad desc, touchpoint
        ) as experience_rank

    from experiences

),

final as (

    select
        latest.customer_key,
        latest.touchpoint,
        latest.experience_at,
        latest.reason,
        data_end.as_of_at

    from latest
    inner join customers
        on latest.customer_key = customers.customer_key
    cross join data_end
    where latest.experience_rank = 1
        and latest.is_bad
        and latest.experience_at >= {{ dbt.dateadd('day', -recent_days, 'data_end.as_of_at') }}
        and customers.marketing_consent

)

select * from final
