with

identities as (

    select * from {{ ref('int_identities_stitched') }}

),

final as (

    select
        anonymous_id,
        customer_key,
        first_identified_at,
        devices_for_customer,
        conflicting_customers

    from identities

)

select * from final
