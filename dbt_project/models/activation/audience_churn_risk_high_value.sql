{%- set risk_threshold = var('cxloop_churn_risk_threshold') -%}
{%- set value_quantile = var('cxloop_high_value_quantile') -%}

with

scores as (

    select * from {{ source('cxloop', 'customer_scores') }}

),

customers as (

    select * from {{ ref('customers') }}

),

scored as (

    select
        scores.customer_key,
        scores.as_of_date,
        scores.churn_probability,
        scores.predicted_ltv_usd,
        customers.net_revenue_usd,
        customers.marketing_consent,
        scores.churn_model_version,
        scores.ltv_model_version,
        percent_rank() over (order by customers.net_revenue_usd) as revenue_rank,
        percent_rank() over (order by scores.predicted_ltv_usd) as ltv_rank

    from scores
    inner join customers
        on scores.customer_key = customers.customer_key
    where scores.churn_probability is not null

),

final as (

    select
        customer_key,
        as_of_date,
        churn_probability,
        predicted_ltv_usd,
        net_revenue_usd,
        case
            when revenue_rank >= {{ value_quantile }} and ltv_rank >= {{ value_quantile }}
                then 'top spend to date and top predicted value'
            when revenue_rank >= {{ value_quantile }} then 'top spend to date'
            else 'top predicted value'
        end || ', churn probability ' || cast(round(churn_probability, 2) as {{ dbt.type_string() }})
            || ' >= {{ risk_threshold }}' as reason,
        churn_model_version,
        ltv_model_version

    from scored
    where churn_probability >= {{ risk_threshold }}
        and (revenue_rank >= {{ value_quantile }} or coalesce(ltv_rank, 0) >= {{ value_quantile }})
        and marketing_consent

)

select * from final
