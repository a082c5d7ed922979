<?php
declare(strict_types=1);

namespace FaShop\Notify\Exception;

/** No subscription grant, form_id or prepay_id left for this user and template. */
class NoPermitException extends \RuntimeException implements NotifyException
{
    use CarriesStatus;
}
